//! `lepton-serve` as a newcomer runs it: a process over a registry, real models, real HTTP.
//! Its answers must be the ones the same model gives in process.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};

use serde_json::{Value, json};

use lepton::data::Column;
use lepton::prelude::*;

mod common;
use common::{iris_predictor, scaled_wine, start_lepton_serve};

/// Starts `lepton-serve` on a free port (with `token`, if any, as `LEPTON_API_TOKEN`);
/// returns the process and its base URL.
fn start(registry: &Path, extra: &[&str], token: Option<&str>) -> (Child, String) {
    let env = [
        ("RUST_LOG", "warn"),
        ("LEPTON_API_TOKEN", token.unwrap_or("")),
    ];
    start_lepton_serve(registry, extra, &env)
}

fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(url)
        .json(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

/// The iris predictor, its test rows, and a registry where it is deployed as `iris`.
fn iris_registry() -> (Predictor, Table, tempfile::TempDir) {
    let (predictor, test) = iris_predictor();
    let artifact = tempfile::tempdir().unwrap();
    predictor.save(artifact.path(), BTreeMap::new()).unwrap();
    let registry = tempfile::tempdir().unwrap();
    LocalRegistryDeployer::new(registry.path())
        .deploy("iris", artifact.path())
        .unwrap();
    (predictor, test, registry)
}

/// SIGTERM, then the exit status: the server stops gracefully and reports success.
fn terminate(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn serves_a_tabular_predictor_exactly_as_it_predicts_in_process() {
    let (predictor, test, registry) = iris_registry();
    let (server, url) = start(registry.path(), &[], None);

    let expected = predictor
        .labels(&predictor.predict_table(&test).unwrap())
        .unwrap();
    let inputs = predictor.input_schema().features.clone();
    let rows: Vec<Value> = (0..test.n_rows())
        .map(|i| {
            let row: serde_json::Map<String, Value> = inputs
                .iter()
                .map(|name| {
                    let Some(Column::Numeric(values)) = test.column(name) else {
                        panic!("iris column {name} is not numeric");
                    };
                    (name.clone(), json!(values[i]))
                })
                .collect();
            Value::Object(row)
        })
        .collect();
    let (status, answer) = post(
        &format!("{url}/v1/models/iris/predict"),
        &json!({"rows": rows}),
    );
    assert_eq!(status, 200, "{answer}");
    let served: Vec<&str> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(served, expected);
    assert_eq!(answer["version"], 1);

    // The preprocessor imputes a missing value; an unknown column is refused.
    let mut row = rows[0].clone();
    row[inputs[0].as_str()] = Value::Null;
    let (status, imputed) = post(
        &format!("{url}/v1/models/iris/predict"),
        &json!({"rows": [row]}),
    );
    assert_eq!(status, 200, "{imputed}");
    let (status, answer) = post(
        &format!("{url}/v1/models/iris/predict"),
        &json!({"rows": [{"petal": 1.0}]}),
    );
    assert_eq!(status, 422, "{answer}");
    // The text "NaN" is a missing value, imputed as a null is.
    row[inputs[0].as_str()] = json!("NaN");
    let (status, answer) = post(
        &format!("{url}/v1/models/iris/predict"),
        &json!({"rows": [row]}),
    );
    assert_eq!(
        (status, &answer["predictions"]),
        (200, &imputed["predictions"])
    );
    // A finite number that is infinite once scaled is refused naming its column, not
    // answered with null probabilities.
    row[inputs[0].as_str()] = json!(1e300);
    let (status, answer) = post(
        &format!("{url}/v1/models/iris/predict"),
        &json!({"rows": [row]}),
    );
    assert_eq!(status, 422, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("column `{}`", inputs[0])),
        "{message}"
    );
    terminate(server);
}

#[test]
fn serves_a_model_without_preprocessor_by_position_and_asks_for_the_token() {
    let (train, valid) = scaled_wine();
    let config = MlpConfig::default().with_max_epochs(5);
    let fitted = MlpClassifier::<Cpu>::new(config)
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let model = Box::new(FittedModel::<Cpu>::Mlp(Box::new(fitted)));
    let artifact = tempfile::tempdir().unwrap();
    Predictor::numeric(model.clone(), valid.schema().clone())
        .unwrap()
        .to_artifact(BTreeMap::new())
        .unwrap()
        .save(artifact.path())
        .unwrap();
    let registry = tempfile::tempdir().unwrap();
    LocalRegistryDeployer::new(registry.path())
        .deploy("wine", artifact.path())
        .unwrap();

    let (server, url) = start(registry.path(), &["--batch-window-us", "0"], Some("t0ken"));
    let n = 5;
    let width = valid.n_features();
    let x = &valid.feature_values()[..n * width];
    let expected = model.predict(Features::new(x, width).unwrap()).unwrap();
    let rows: Vec<Vec<f32>> = x.chunks(width).map(<[f32]>::to_vec).collect();
    let predict_url = format!("{url}/v1/models/wine/predict");
    let (status, _) = post(&predict_url, &json!({"rows": rows}));
    assert_eq!(status, 401);
    let answer: Value = reqwest::blocking::Client::new()
        .post(&predict_url)
        .bearer_auth("t0ken")
        .json(&json!({"rows": rows}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for (served, expected) in answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&expected)
    {
        let Prediction::Class {
            index,
            probabilities,
        } = expected
        else {
            panic!("a classifier answered {expected:?}");
        };
        assert_eq!(served["class"], *index);
        for (s, e) in served["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .zip(probabilities)
        {
            assert!((s.as_f64().unwrap() - f64::from(*e)).abs() < 1e-6);
        }
    }
    terminate(server);
}

#[test]
fn a_taken_address_is_an_error_not_a_hang() {
    let registry = tempfile::tempdir().unwrap();
    let (server, url) = start(registry.path(), &[], None);
    let addr = url.trim_start_matches("http://");
    let out = Command::new(env!("CARGO_BIN_EXE_lepton-serve"))
        .args([
            "--registry",
            registry.path().to_str().unwrap(),
            "--addr",
            addr,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    terminate(server);
}

#[test]
fn serves_live_study_reports_from_a_storage() {
    use lepton::search::SqliteStorage;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("studies.db");
    let storage = Arc::new(SqliteStorage::open(&db).unwrap());
    let study = Study::builder("quad/ratic")
        .with_storage(storage.clone())
        .with_sampler(RandomSampler::new(3))
        .build()
        .unwrap();
    let quadratic = |trial: &mut Trial| {
        let x = trial.suggest_float("x", -5.0, 5.0, Scale::Linear)?;
        trial.report(1, x * x + 1.0)?;
        Ok(x * x)
    };
    study.optimize(12, quadratic).unwrap();

    let url = format!("sqlite://{}", db.display());
    let (server, base) = start(dir.path(), &["--studies", &url], Some("secret"));
    // The pages are behind the server's token, like /v1.
    let anonymous = reqwest::blocking::get(format!("{base}/studies")).unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let get = |path: &str| {
        let r = reqwest::blocking::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth("secret")
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, index) = get("/studies");
    assert_eq!(status, 200);
    assert!(
        index.contains("<a href=\"/studies/quad%2Fratic\">quad/ratic</a>"),
        "{index}"
    );
    assert!(index.contains("<td>12</td>"), "{index}");

    let (status, page) = get("/studies/quad%2Fratic");
    assert_eq!(status, 200, "{page}");
    for plot in ["history", "intermediate", "parallel", "importance", "slice"] {
        assert!(page.contains(&format!("data-plot=\"{plot}\"")), "no {plot}");
    }
    assert!(page.contains("data-live=\"/studies/quad%2Fratic/progress\""));
    assert!(page.contains("data-finished=\"12\""));
    assert!(page.contains("data-points=\"12\""));

    let progress = || {
        let (status, body) = get("/studies/quad%2Fratic/progress");
        assert_eq!(status, 200);
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(progress(), json!({"trials": 12, "finished": 12}));
    // A worker finishes three more trials: the page's poll sees them.
    study.optimize(3, quadratic).unwrap();
    assert_eq!(progress(), json!({"trials": 15, "finished": 15}));
    assert!(
        get("/studies/quad%2Fratic")
            .1
            .contains("data-finished=\"15\"")
    );

    for missing in ["/studies/nope", "/studies/nope/progress"] {
        let (status, body) = get(missing);
        assert_eq!(status, 404, "{missing}: {body}");
        assert!(body.contains("nope"), "{body}");
    }
    terminate(server);
}

/// The peak resident memory of process `pid`, in MiB (Linux).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// 128 requests at once, each a body just under the 8 MiB limit holding four million
/// values: parsed within the model's width and charged against the memory budget, they
/// leave the server's peak memory within a fixed bound (about 100 MB each, 12 GB in all,
/// before widths were checked while parsing).
#[test]
#[cfg(target_os = "linux")]
fn concurrent_near_limit_bodies_keep_the_servers_memory_bounded() {
    let (_, _, registry) = iris_registry();
    let (server, url) = start(registry.path(), &[], None);
    let before = peak_rss_mib(server.id()).unwrap();
    let body: &'static [u8] = Box::leak(
        format!("{{\"rows\": [[{}]]}}", vec!["1"; 4_000_000].join(","))
            .into_bytes()
            .into_boxed_slice(),
    );
    assert!(body.len() < 8 << 20);
    let url = format!("{url}/v1/models/iris/predict");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..128)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || {
                    reqwest::blocking::Client::new()
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .map_or(0, |r| r.status().as_u16())
                })
            })
            .collect();
        sent.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let peak = peak_rss_mib(server.id()).unwrap();
    eprintln!(
        "peak RSS {before:.0} MiB before, {peak:.0} MiB after 128 concurrent 8 MB bodies; \
         statuses {:?}",
        statuses.iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(*s).or_insert(0) += 1;
            m
        })
    );
    // 0: the server answered 503 before reading the body and closed the connection while
    // the client was still sending it, so the client saw the close, not the answer.
    assert!(
        statuses.iter().all(|s| [0, 422, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&422), "{statuses:?}");
    assert!(peak < 400.0, "peak RSS {peak:.0} MiB");
    terminate(server);
}
