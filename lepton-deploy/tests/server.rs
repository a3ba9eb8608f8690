//! The prediction server over real HTTP on loopback, with a small model whose answers show
//! which version gave them: bad input, limits, tokens, hot swap under load, a corrupted
//! version, dynamic batching, graceful shutdown, and the deployer that waits for the swap.
#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use lepton_core::{Dataset, Error, Features, Predict, Prediction, Schema, Target, Task};
use lepton_deploy::{
    Batching, Cell, Examples, LocalRegistry, ModelArtifact, ModelLoader, OnlineLearning,
    PRODUCTION, Registry, Servable, Server, ServerConfig, Tuning, encode_numbers,
};

/// `yes` when `a + b + bias > 0`; sleeps `sleep_ms` per batch; records each batch's size;
/// panics on a row whose `a` is `panic_on`, if set.
struct Threshold {
    schema: Schema,
    bias: f64,
    sleep_ms: u64,
    panic_on: Option<f32>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl Predict for Threshold {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        std::thread::sleep(Duration::from_millis(self.sleep_ms));
        self.batches.lock().unwrap().push(x.n_rows());
        if let Some(bad) = self.panic_on
            && x.values().chunks(2).any(|r| r[0] == bad)
        {
            panic!("the model cannot take a = {bad}");
        }
        Ok(x.values()
            .chunks(2)
            .map(|r| {
                let yes = f64::from(r[0] + r[1]) + self.bias > 0.0;
                Prediction::Class {
                    index: usize::from(yes),
                    probabilities: if yes { vec![0.0, 1.0] } else { vec![1.0, 0.0] },
                }
            })
            .collect())
    }
}

impl Servable for Threshold {
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn width(&self) -> usize {
        2
    }
    fn encode(&self, row: &[Cell], out: &mut Vec<f32>) -> lepton_core::Result<()> {
        encode_numbers(&self.schema, row, out)
    }
    /// "Training": the bias (on a grid of halves) with the most training rows right, the
    /// one nearest the current bias among equals.
    fn fine_tune(&self, examples: &Examples, _: &Tuning) -> lepton_core::Result<ModelArtifact> {
        let right = |bias: f64| {
            (0..examples.len())
                .filter(|&i| {
                    let x = examples.features(i).unwrap();
                    let yes = f64::from(x[0] + x[1]) + bias > 0.0;
                    examples.target(i) == Some(Target::Class(usize::from(yes)))
                })
                .count()
        };
        let grid = (-20..=20).map(|k| f64::from(k) / 2.0);
        let best = grid
            .max_by(|a, b| {
                right(*a)
                    .cmp(&right(*b))
                    .then((b - self.bias).abs().total_cmp(&(a - self.bias).abs()))
            })
            .unwrap();
        Ok(artifact(best, self.sleep_ms))
    }
}

#[derive(Default)]
struct Loader {
    batches: Arc<Mutex<Vec<usize>>>,
    loads: AtomicUsize,
}

impl ModelLoader for Loader {
    fn load(&self, artifact: &ModelArtifact) -> lepton_core::Result<Arc<dyn Servable>> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let config: Value = artifact.model_config()?;
        if config["panic_on_load"] == true {
            panic!("a hostile artifact");
        }
        let bias = config["bias"]
            .as_f64()
            .ok_or_else(|| Error::InvalidInput("no bias".into()))?;
        Ok(Arc::new(Threshold {
            schema: artifact.manifest().input_schema.clone(),
            bias,
            sleep_ms: config["sleep_ms"].as_u64().unwrap_or(0),
            panic_on: config["panic_on"].as_f64().map(|a| a as f32),
            batches: self.batches.clone(),
        }))
    }
}

fn yes_no() -> Task {
    Task::Classification {
        classes: vec!["no".into(), "yes".into()],
    }
}

fn artifact(bias: f64, sleep_ms: u64) -> ModelArtifact {
    artifact_with(json!({"bias": bias, "sleep_ms": sleep_ms}))
}

fn artifact_with(config: Value) -> ModelArtifact {
    let schema = Schema {
        features: vec!["a".into(), "b".into()],
        target: "y".into(),
        task: yes_no(),
    };
    ModelArtifact::new(
        "threshold",
        &config,
        &(),
        schema,
        BTreeMap::from([("accuracy".to_owned(), 0.9)]),
        vec![1, 2, 3],
    )
    .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    registry: Arc<LocalRegistry>,
    loader: Arc<Loader>,
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
}

/// A registry with model `m` at version 1 (bias 0) in production, and a server on it.
fn serve(config: ServerConfig, sleep_ms: u64) -> Fixture {
    serve_artifact(config, &artifact(0.0, sleep_ms))
}

/// A registry with `v1` as model `m`'s version 1 in production, and a server on it.
fn serve_artifact(config: ServerConfig, v1: &ModelArtifact) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(LocalRegistry::new(dir.path()));
    let v = registry.register("m", v1).unwrap();
    registry.promote("m", v, PRODUCTION).unwrap();
    let loader = Arc::new(Loader::default());
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        registry.clone(),
        loader.clone(),
    )
    .unwrap();
    let base = format!("http://{}", server.local_addr());
    Fixture {
        _dir: dir,
        registry,
        loader,
        server: Some(server),
        base,
        client: reqwest::Client::new(),
    }
}

fn fast_polling() -> ServerConfig {
    ServerConfig {
        poll_interval: Duration::from_millis(20),
        ..ServerConfig::default()
    }
}

impl Fixture {
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn predict(&self, body: Value) -> (StatusCode, Value) {
        self.post("/v1/models/m/predict", body.to_string()).await
    }

    /// Posts feedback to `m` with the feedback token.
    async fn feedback(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        self.feedback_to("m", body).await
    }

    /// Posts feedback to `model` with the feedback token.
    async fn feedback_to(
        &self,
        model: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/v1/models/{model}/feedback", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {FEEDBACK_TOKEN}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the server answers with `version`.
    async fn wait_for_version(&self, version: u64) {
        for _ in 0..200 {
            let (_, answer) = self.predict(json!({"rows": [[1, 1]]})).await;
            if answer["version"] == version {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server never served version {version}");
    }
}

fn error_code(answer: &Value) -> &str {
    answer["error"]["code"]
        .as_str()
        .unwrap_or("<no JSON error body>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_rows_by_name_or_position_and_describes_itself() {
    let f = serve(fast_polling(), 0);
    let (status, by_name) = f
        .predict(json!({"rows": [{"a": 1.0, "b": 2}, {"b": -3, "a": "1"}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{by_name}");
    let (_, by_position) = f.predict(json!({"rows": [[1.0, 2], [1, -3]]})).await;
    assert_eq!(by_name, by_position);
    assert_eq!(by_name["version"], 1);
    assert_eq!(by_name["predictions"][0]["label"], "yes");
    assert_eq!(by_name["predictions"][1]["label"], "no");
    assert_eq!(
        by_name["predictions"][1]["probabilities"],
        json!([1.0, 0.0])
    );

    let (status, list) = f.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["models"][0]["name"], "m");
    assert_eq!(list["models"][0]["version"], 1);
    let (_, about) = f.get("/v1/models/m").await;
    let about: Value = serde_json::from_str(&about).unwrap();
    assert_eq!(about["inputs"], json!(["a", "b"]));
    assert_eq!(about["classes"], json!(["no", "yes"]));
    assert_eq!(about["metrics"]["accuracy"], 0.9);

    assert_eq!(f.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(f.get("/readyz").await.0, StatusCode::OK);
    let (status, metrics) = f.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics
            .contains(r#"lepton_http_requests_total{endpoint="predict",model="m",status="200"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"lepton_model_version{model="m"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("lepton_predict_latency_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_status_and_a_json_error() {
    let f = serve(
        ServerConfig {
            max_body_bytes: 4096,
            max_rows: 10,
            ..fast_polling()
        },
        0,
    );
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            "{\"rows\": [".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "not JSON at all",
            "rows=1".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "rows not a list",
            r#"{"rows": 3}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown field",
            r#"{"rows": [], "x": 1}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "out-of-range number",
            r#"{"rows": [[1e400, 1]]}"#.into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "no rows",
            r#"{"rows": []}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "wrong column name",
            r#"{"rows": [{"a": 1, "c": 2}]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "column given twice",
            r#"{"rows": [{"a": 1, "a": 2, "b": 3}]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "missing column",
            r#"{"rows": [{"a": 1}]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "too few values",
            r#"{"rows": [[1]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "too many values",
            r#"{"rows": [[1, 2, 3]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "NaN",
            r#"{"rows": [[1, "NaN"]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "infinity",
            r#"{"rows": [["inf", 1]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "null",
            r#"{"rows": [[1, null]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "text",
            r#"{"rows": [[1, "two"]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "nested",
            r#"{"rows": [[1, [2]]]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "row not a row",
            r#"{"rows": [7]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "too many rows",
            json!({"rows": vec![[1, 2]; 11]}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_rows",
        ),
        (
            "body too large",
            json!({"rows": vec![[1.0, 2.0]; 600]}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, answer) = f.post("/v1/models/m/predict", body).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, code),
            "{what}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // The row at fault is named.
    let (_, answer) = f.predict(json!({"rows": [[1, 2], [3, "x"]]})).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("row 1:"),
        "{answer}"
    );

    let (status, answer) = f
        .post("/v1/models/nope/predict", "{\"rows\": [[1, 2]]}")
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "unknown_model")
    );
    let (status, answer) = f.post("/v1/models/../predict", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, body) = f.get("/v2/anything").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_code(&serde_json::from_str(&body).unwrap()),
        "not_found"
    );
    // Still serving after all that.
    assert_eq!(f.predict(json!({"rows": [[1, 2]]})).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_asked_for_on_v1_only() {
    let f = serve(
        ServerConfig {
            token: Some("s3cret".into()),
            ..fast_polling()
        },
        0,
    );
    let url = format!("{}/v1/models/m/predict", f.base);
    let body = r#"{"rows": [[1, 2]]}"#;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("s3cret"),
        Some("Bearer s3cret2"),
    ] {
        let mut request = f
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "unauthorized");
    }
    // The scheme is case-insensitive (RFC 9110); the token is not.
    for auth in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"] {
        let response = f
            .client
            .post(&url)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{auth}");
    }
    let response = f
        .client
        .post(&url)
        .header("authorization", "Bearer S3CRET")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(f.get("/v1/models").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(f.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(f.get("/metrics").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_and_rollback_switch_traffic_without_failing_a_request() {
    let f = serve(
        ServerConfig {
            batching: Some(Batching {
                window: Duration::from_millis(1),
                max_rows: 16,
                workers: 2,
            }),
            ..fast_polling()
        },
        1,
    );
    let v2 = f.registry.register("m", &artifact(-10.0, 1)).unwrap();
    let f = Arc::new(f);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (f, stop) = (f.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, answer) = f.predict(json!({"rows": [[1, 2]]})).await;
                    assert_eq!(status, StatusCode::OK, "{answer}");
                    // Each version answers consistently: v1 says yes, v2 (bias -10) no.
                    let (version, label) = (
                        answer["version"].as_u64().unwrap(),
                        &answer["predictions"][0]["label"],
                    );
                    assert_eq!(label, if version == 1 { "yes" } else { "no" });
                    seen.push(version);
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.registry.promote("m", v2, PRODUCTION).unwrap();
    f.wait_for_version(v2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.registry.rollback("m", PRODUCTION).unwrap();
    f.wait_for_version(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for client in clients {
        let seen = client.await.unwrap();
        answered += seen.len();
        // Versions only move forward in time: 1, then 2, then back to 1.
        let changes = seen.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes <= 2, "{seen:?}");
    }
    assert!(answered > 100, "only {answered} requests answered");
    let (_, metrics) = f.get("/metrics").await;
    assert!(
        metrics.contains(
            "lepton_http_requests_total{endpoint=\"predict\",model=\"m\",status=\"200\"}"
        )
    );
    assert!(!metrics.contains("status=\"5"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_version_is_refused_and_the_previous_one_keeps_serving() {
    let f = serve(fast_polling(), 0);
    let v2 = f.registry.register("m", &artifact(-10.0, 0)).unwrap();
    // The weights of version 2 rot on disk after its promotion was written by another
    // process (the registry would refuse to promote a version that does not load).
    let dir = f.registry.root().join("m");
    std::fs::write(dir.join(format!("v{v2}/weights.bpk")), [9, 9]).unwrap();
    std::fs::write(dir.join("aliases.json"), r#"{"production": [1, 2]}"#).unwrap();
    let mut refused = false;
    for _ in 0..200 {
        let (_, about) = f.get("/v1/models/m").await;
        let about: Value = serde_json::from_str(&about).unwrap();
        if about["refused"]["version"] == v2 {
            assert!(
                about["refused"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("checksum"),
                "{about}"
            );
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "version 2 was never refused");
    let (status, answer) = f.predict(json!({"rows": [[1, 2]]})).await;
    assert_eq!((status, &answer["version"]), (StatusCode::OK, &json!(1)));
    let (_, metrics) = f.get("/metrics").await;
    assert!(
        metrics.contains(r#"lepton_model_load_failures_total{model="m"} 1"#),
        "{metrics}"
    );
    // The refused version is not retried every poll; a good new version is served.
    let loads = f.loader.loads.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.loader.loads.load(Ordering::Relaxed), loads);
    let v3 = f.registry.register("m", &artifact(-10.0, 0)).unwrap();
    f.registry.promote("m", v3, PRODUCTION).unwrap();
    f.wait_for_version(v3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_rows_are_batched_and_each_gets_its_own_answer() {
    let f = serve(
        ServerConfig {
            batching: Some(Batching {
                window: Duration::from_millis(50),
                max_rows: 64,
                workers: 1,
            }),
            ..fast_polling()
        },
        // Each batch takes 100 ms, so requests that arrive while one runs queue behind it
        // and form the next batch, however slowly a loaded machine sends them.
        100,
    );
    let f = Arc::new(f);
    let requests: Vec<_> = (0..16)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                // Odd requests are "yes" rows, even ones "no" rows.
                let a = if i % 2 == 1 { 5.0 } else { -5.0 };
                let (status, answer) = f.predict(json!({"rows": [[a, 0.0]]})).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                let expected = if i % 2 == 1 { "yes" } else { "no" };
                assert_eq!(answer["predictions"][0]["label"], expected, "request {i}");
                assert_eq!(answer["predictions"].as_array().unwrap().len(), 1);
            })
        })
        .collect();
    for r in requests {
        r.await.unwrap();
    }
    let batches = f.loader.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 16);
    assert!(
        batches.iter().any(|&n| n > 1),
        "no request was batched: {batches:?}"
    );
    let (_, metrics) = f.get("/metrics").await;
    assert!(
        metrics.contains(r#"lepton_batch_rows_count{model="m"}"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrency_limit_requests_are_shed_with_503() {
    let f = Arc::new(serve(
        ServerConfig {
            max_concurrency: 2,
            batching: None,
            ..fast_polling()
        },
        300,
    ));
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.predict(json!({"rows": [[1, 2]]})).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        let (status, answer) = r.await.unwrap();
        if status != StatusCode::OK {
            assert_eq!(error_code(&answer), "overloaded", "{answer}");
        }
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let shed = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(
        (ok + shed, ok >= 1, shed >= 1),
        (6, true, true),
        "{statuses:?}"
    );
    // Health stays answerable under load.
    assert_eq!(f.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_with_504() {
    let f = serve(
        ServerConfig {
            request_timeout: Duration::from_millis(50),
            batching: None,
            ..fast_polling()
        },
        400,
    );
    let (status, answer) = f.predict(json!({"rows": [[1, 2]]})).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::GATEWAY_TIMEOUT, "timeout")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_requests_in_flight() {
    let mut f = serve(
        ServerConfig {
            batching: None,
            ..fast_polling()
        },
        300,
    );
    let (client, url) = (f.client.clone(), format!("{}/v1/models/m/predict", f.base));
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"rows": [[1, 2]]}"#)
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = f.server.take().unwrap();
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::OK);
    assert!(
        f.client
            .get(format!("{}/healthz", f.base))
            .send()
            .await
            .is_err(),
        "still listening"
    );
}

#[test]
fn an_empty_registry_is_not_ready_and_a_taken_port_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(LocalRegistry::new(dir.path()));
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
        registry.clone(),
        Arc::new(Loader::default()),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async {
        let r = reqwest::get(format!("http://{}/readyz", server.local_addr()))
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(
        (answer.0, error_code(&answer.1)),
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    );
    let taken = Server::start(
        server.local_addr(),
        ServerConfig::default(),
        registry,
        Arc::new(Loader::default()),
    );
    assert!(taken.is_err());
    server.shutdown().unwrap();
}

#[test]
fn the_http_deployer_returns_once_the_server_serves_the_new_version() {
    use lepton_core::Deployer;
    use lepton_deploy::HttpServerDeployer;

    let f = serve(fast_polling(), 0);
    let deployer = HttpServerDeployer::new(f.registry.root(), f.base.clone())
        .with_wait(Duration::from_secs(10));
    let staged = tempfile::tempdir().unwrap();
    artifact(-10.0, 0).save(staged.path()).unwrap();
    let deployment = deployer.deploy("m", staged.path()).unwrap();
    assert_eq!(deployment.version, 2);
    assert_eq!(
        deployment.address,
        format!("{}/v1/models/m/predict", f.base)
    );
    let predict = || {
        let answer: Value = reqwest::blocking::Client::new()
            .post(&deployment.address)
            .header("content-type", "application/json")
            .body(r#"{"rows": [[1, 2]]}"#)
            .send()
            .unwrap()
            .json()
            .unwrap();
        (
            answer["version"].as_u64().unwrap(),
            answer["predictions"][0]["label"].clone(),
        )
    };
    // Served at once: the deployer waited for the swap.
    assert_eq!(predict(), (2, json!("no")));

    // A version the server cannot load (the loader wants a bias) is refused, the alias moves
    // back, and version 2 keeps serving.
    let broken = ModelArtifact::new(
        "threshold",
        &json!({"no_bias": true}),
        &(),
        artifact(0.0, 0).manifest().input_schema.clone(),
        BTreeMap::new(),
        vec![1],
    )
    .unwrap();
    let staged = tempfile::tempdir().unwrap();
    broken.save(staged.path()).unwrap();
    let e = deployer.deploy("m", staged.path()).unwrap_err();
    assert!(e.to_string().contains("refused version 3"), "{e}");
    assert_eq!(f.registry.aliases("m").unwrap()[PRODUCTION], 2);
    assert_eq!(predict(), (2, json!("no")));

    assert_eq!(deployer.rollback("m").unwrap().version, 1);
    assert_eq!(predict(), (1, json!("yes")));
    let wrong = HttpServerDeployer::new(f.registry.root(), "http://127.0.0.1:9")
        .with_wait(Duration::from_millis(200));
    let staged = tempfile::tempdir().unwrap();
    artifact(-10.0, 0).save(staged.path()).unwrap();
    let e = wrong.deploy("m", staged.path()).unwrap_err();
    assert!(e.to_string().contains("not serving version 4"), "{e}");
    assert_eq!(f.registry.aliases("m").unwrap()[PRODUCTION], 1);
}

const FEEDBACK_TOKEN: &str = "feedback-s3cret";

/// Learning every 30 ms from 100 rows, with no wait between promotions.
fn learning_often() -> OnlineLearning {
    OnlineLearning {
        interval: Duration::from_millis(30),
        min_feedback: 100,
        min_promotion_interval: Duration::ZERO,
        ..OnlineLearning::default()
    }
}

/// Replay rows (a, 0) labelled `a > 0`: 60 to train on with |a| >= 5 (right for any bias
/// the tests reach), then the 20 the guard holds out (the last quarter) at `guard`.
fn replay_sample(guard: impl Iterator<Item = f64>) -> Examples {
    let mut replay = Examples::empty(yes_no(), 2);
    let train = (0..60).map(|k| {
        let a = 5.0 + f64::from(k % 30) / 8.0;
        if k < 30 { a } else { -a }
    });
    for a in train.chain(guard) {
        replay
            .push(&[a as f32, 0.0], Target::Class(usize::from(a > 0.0)))
            .unwrap();
    }
    assert_eq!(replay.len(), 80);
    replay
}

/// A registry whose v1 (bias 0) carries a replay sample of its training distribution: rows
/// (a, 0) with |a| >= 5, labelled `a > 0`; and a server that learns online every 30 ms.
fn serve_learning() -> Fixture {
    let far = (0..20).map(|k| {
        let a = 5.0 + f64::from(k % 10) / 8.0;
        if k < 10 { a } else { -a }
    });
    serve_learning_with(replay_sample(far), learning_often())
}

fn serve_learning_with(replay: Examples, learning: OnlineLearning) -> Fixture {
    let v1 = artifact(0.0, 0).with_replay(&replay).unwrap();
    serve_artifact(
        ServerConfig {
            learning: Some(learning),
            feedback_token: Some(FEEDBACK_TOKEN.into()),
            ..fast_polling()
        },
        &v1,
    )
}

impl Fixture {
    /// Posts 200 feedback rows (a, 0) with a in [-3, 3) labelled by `label`; waits for the
    /// learning round they start and returns `/v1/models/m`'s learning status after it.
    async fn feedback_round(&self, label: impl Fn(usize, f64) -> &'static str) -> Value {
        let rounds = |about: &Value| about["learning"]["rounds"].as_u64().unwrap();
        let before = rounds(&self.about().await);
        let a = |i: usize| -3.0 + 6.0 * (i as f64 * 0.618_034).fract();
        let rows: Vec<Value> = (0..200).map(|i| json!([a(i), 0.0])).collect();
        let labels: Vec<&str> = (0..200).map(|i| label(i, a(i))).collect();
        self.feedback_rows_round(&rows, &labels, before).await
    }

    /// Posts labelled rows as feedback; waits for the learning round after round `before`
    /// and returns `/v1/models/m`'s learning status after it.
    async fn feedback_rows_round(&self, rows: &[Value], labels: &[&str], before: u64) -> Value {
        let rounds = |about: &Value| about["learning"]["rounds"].as_u64().unwrap();
        let (status, answer) = self
            .feedback(json!({"rows": rows, "labels": labels}).to_string())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["accepted"], rows.len());
        for _ in 0..300 {
            let about = self.about().await;
            if rounds(&about) > before && !about["learning"]["last_round"].is_null() {
                return about["learning"].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no learning round ran");
    }

    async fn about(&self) -> Value {
        serde_json::from_str(&self.get("/v1/models/m").await.1).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_from_a_shifted_world_is_learned_guarded_and_rolled_back() {
    let f = serve_learning();
    // The world moved: `yes` now means a > 2. The live version (a > 0) is wrong on a third
    // of the feedback; a candidate with bias -2 is right on all of it and on the replay rows.
    let learning = f
        .feedback_round(|_, a| if a > 2.0 { "yes" } else { "no" })
        .await;
    let round = &learning["last_round"];
    assert_eq!(round["promoted_version"], 2, "{learning}");
    assert_eq!(round["parent_version"], 1);
    assert!(
        round["candidate"]["feedback"].as_f64().unwrap()
            > round["live"]["feedback"].as_f64().unwrap()
    );
    assert_eq!(round["candidate"]["replay"], 1.0);
    f.wait_for_version(2).await;
    let (_, answer) = f.predict(json!({"rows": [[1.5, 0.0]]})).await;
    assert_eq!(answer["predictions"][0]["label"], "no");
    // Lineage: the new version names its parent and keeps the replay sample.
    let v2 = f.registry.get("m", 2).unwrap();
    assert_eq!(v2.manifest().parent_version, Some(1));
    assert_eq!(v2.replay().unwrap().unwrap().len(), 80);
    let (_, metrics) = f.get("/metrics").await;
    assert!(
        metrics.contains(r#"lepton_candidates_total{model="m",outcome="promoted"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"lepton_feedback_rows_total{model="m"} 200"#),
        "{metrics}"
    );
    // Rollback works on a learned version like on any other.
    assert_eq!(f.registry.rollback("m", PRODUCTION).unwrap(), 1);
    f.wait_for_version(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_that_is_label_noise_is_never_promoted() {
    let f = serve_learning();
    for round in 0..5u64 {
        // Labels from a seeded generator: no relation to the inputs.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(round);
        let labels: Vec<&'static str> = (0..200)
            .map(|_| if rng.random_bool(0.5) { "yes" } else { "no" })
            .collect();
        let learning = f.feedback_round(|i, _| labels[i]).await;
        let round = &learning["last_round"];
        assert!(round["promoted_version"].is_null(), "{learning}");
        let reason = round["reason"].as_str().unwrap();
        assert!(
            reason.contains("no significant gain") || reason.contains("forgets"),
            "{reason}"
        );
    }
    assert_eq!(f.registry.versions("m").unwrap(), [1]);
    let (_, metrics) = f.get("/metrics").await;
    assert!(
        metrics.contains(r#"lepton_candidates_total{model="m",outcome="rejected"} 5"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_feedback_is_refused_and_feedback_without_learning_is_a_conflict() {
    let f = serve_learning();
    let cases = [
        (
            r#"{"rows": [[1, 2]], "labels": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"rows": [[1, 2]], "labels": ["maybe"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"rows": [[1, 2]], "labels": [[1]]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"rows": [[1, "x"]], "labels": ["yes"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"rows": [[1, 2]]}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"rows": [[1, 2]], "labels": ["yes"], "extra": 1}"#,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, status) in cases {
        let (got, answer) = f.feedback(body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let good = r#"{"rows": [[1, 2]], "labels": ["yes"]}"#;
    // Without the feedback token, or as a browser's cross-site form would send it: refused.
    let (status, answer) = f.post("/v1/models/m/feedback", good).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let response = f
        .client
        .post(format!("{}/v1/models/m/feedback", f.base))
        .header("authorization", format!("Bearer {FEEDBACK_TOKEN}"))
        .header("content-type", "text/plain")
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, answer) = f.feedback(good).await;
    assert_eq!(
        (status, &answer["buffered"]),
        (StatusCode::ACCEPTED, &json!(1))
    );
    let (status, _) = f.feedback_to("nope", good).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let plain = serve(fast_polling(), 0);
    let (status, answer) = plain
        .post(
            "/v1/models/m/feedback",
            r#"{"rows": [[1, 2]], "labels": ["yes"]}"#,
        )
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "learning_disabled")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_request_does_not_wait_for_the_batching_window() {
    let f = serve(
        ServerConfig {
            batching: Some(Batching {
                window: Duration::from_secs(5),
                max_rows: 64,
                workers: 1,
            }),
            ..fast_polling()
        },
        0,
    );
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(f.predict(json!({"rows": [[1, 2]]})).await.0, StatusCode::OK);
    }
    // Nothing else was arriving, so no request waited the 5 s window.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn limits_of_zero_and_learning_settings_out_of_range_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(LocalRegistry::new(dir.path()));
    let start = |config: ServerConfig| {
        Server::start(
            "127.0.0.1:0".parse().unwrap(),
            config,
            registry.clone(),
            Arc::new(Loader::default()),
        )
    };
    let learning = |l: OnlineLearning| ServerConfig {
        learning: Some(l),
        feedback_token: Some(FEEDBACK_TOKEN.into()),
        ..ServerConfig::default()
    };
    for config in [
        ServerConfig {
            max_rows: 0,
            ..ServerConfig::default()
        },
        ServerConfig {
            max_concurrency: 0,
            ..ServerConfig::default()
        },
        learning(OnlineLearning {
            guard_fraction: 1.0,
            ..OnlineLearning::default()
        }),
        learning(OnlineLearning {
            interval: Duration::ZERO,
            ..OnlineLearning::default()
        }),
        learning(OnlineLearning {
            min_feedback: 20_000,
            ..OnlineLearning::default()
        }),
    ] {
        let e = start(config).err().expect("a bad configuration started");
        assert!(e.to_string().contains("must be"), "{e}");
    }
    start(learning(OnlineLearning::default()))
        .unwrap()
        .shutdown()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_panics_on_one_input_keeps_answering_the_others() {
    let batched = Batching {
        window: Duration::from_millis(1),
        max_rows: 64,
        workers: 2,
    };
    for batching in [Some(batched), None] {
        let panicky = artifact_with(json!({"bias": 0.0, "sleep_ms": 0, "panic_on": 13.0}));
        let f = serve_artifact(
            ServerConfig {
                batching,
                ..fast_polling()
            },
            &panicky,
        );
        // More panics than there are workers: none of them takes a worker with it.
        for _ in 0..3 {
            let (status, answer) = f.predict(json!({"rows": [[13, 0]]})).await;
            assert_eq!(
                (status, error_code(&answer)),
                (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                "{batching:?}: {answer}"
            );
        }
        let (status, answer) = f.predict(json!({"rows": [[1, 1]]})).await;
        assert_eq!(status, StatusCode::OK, "{batching:?}: {answer}");
        assert_eq!(answer["predictions"][0]["label"], "yes");
        assert_eq!(f.get("/readyz").await.0, StatusCode::OK);
        let (_, metrics) = f.get("/metrics").await;
        assert!(
            metrics.contains(r#"lepton_model_panics_total{model="m"} 3"#),
            "{batching:?}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_time_out_do_not_reach_the_model() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batched = Batching {
        window: Duration::from_micros(500),
        max_rows: 64,
        workers: 1,
    };
    // A model call takes 400 ms; each request gives up after 50 ms; 40 arrive over a second.
    for (batching, most) in [(Some(batched), 4), (None, 4 * cores)] {
        let f = serve(
            ServerConfig {
                request_timeout: Duration::from_millis(50),
                batching,
                ..fast_polling()
            },
            400,
        );
        let mut requests = Vec::new();
        for _ in 0..40 {
            let (client, url) = (f.client.clone(), format!("{}/v1/models/m/predict", f.base));
            requests.push(tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"rows": [[1, 2]]}"#)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for request in requests {
            assert_eq!(request.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
        }
        // Whatever did reach the model finishes.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let calls = f.loader.batches.lock().unwrap().len();
        assert!(
            calls <= most.min(39),
            "{batching:?}: {calls} model calls for 40 requests that all timed out"
        );
    }
}

/// Connects `n` sockets to `addr` that each send half a request head, then nothing.
fn half_sent_headers(addr: &str, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..n)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect()
}

/// Whether the server closed `socket` (or answered on it) within `wait`.
fn closed_within(socket: &mut std::net::TcpStream, wait: Duration) -> bool {
    use std::io::Read;
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer (408) before the close
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_do_not_starve_a_request_and_are_closed_within_the_timeout() {
    let f = serve(
        ServerConfig {
            header_read_timeout: Duration::from_secs(1),
            ..fast_polling()
        },
        0,
    );
    let addr = f.base.trim_start_matches("http://").to_owned();
    let slow = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || half_sent_headers(&addr, 2000))
            .await
            .unwrap()
    };
    let (status, answer) = f.predict(json!({"rows": [[1, 2]]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A kept-alive connection that goes quiet after its request is closed the same way.
    let idle = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        s
    })
    .await
    .unwrap();
    // Read in the order they were opened, each given the timeout and ample slack for a busy
    // machine: the first wait is about the timeout, and the others are closed by then.
    let closed = tokio::task::spawn_blocking(move || {
        slow.into_iter()
            .chain([idle])
            .take_while(|s| closed_within(&mut s.try_clone().unwrap(), Duration::from_secs(10)))
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 2001, "connections left open by the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_request_waits_for_a_slot_rather_than_failing() {
    let f = serve(
        ServerConfig {
            header_read_timeout: Duration::from_millis(500),
            max_connections: 8,
            ..fast_polling()
        },
        0,
    );
    let addr = f.base.trim_start_matches("http://").to_owned();
    let opened = std::time::Instant::now();
    let slow = tokio::task::spawn_blocking(move || half_sent_headers(&addr, 8))
        .await
        .unwrap();
    // Accepted once the header timeout closes one of the eight, and not before: none of
    // them was accepted before `opened`, so none is closed before `opened` + 500 ms.
    let (status, answer) = f.predict(json!({"rows": [[1, 2]]})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        opened.elapsed() >= Duration::from_millis(500),
        "answered after {:?}: the ninth connection was not held back",
        opened.elapsed()
    );
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_bodies_are_refused_while_parsing_and_bodies_share_a_memory_budget() {
    let max_body = 8 << 20;
    let f = serve(
        ServerConfig {
            max_body_bytes: max_body,
            memory_budget_bytes: lepton_deploy::BODY_MEMORY_FACTOR * max_body,
            ..fast_polling()
        },
        300,
    );
    // Four million values for a model of two columns: counted, not kept, and refused.
    let wide = format!("{{\"rows\": [[{}]]}}", vec!["1"; 4_000_000].join(","));
    assert!(wide.len() < max_body);
    let (status, answer) = f.post("/v1/models/m/predict", wide).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input")
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("4000000 values"), "{message}");
    let many_rows = json!({"rows": vec![[1, 2]; 2000]}).to_string();
    let (status, answer) = f.post("/v1/models/m/predict", many_rows).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2000 rows")
    );

    // A body of the largest size is charged the whole budget while it runs (300 ms): a
    // request beside it is shed, and one after it is answered.
    let mut padded = String::from(r#"{"rows": [[1, 2]]}"#);
    padded.push_str(&" ".repeat(max_body - padded.len()));
    let (client, url) = (f.client.clone(), format!("{}/v1/models/m/predict", f.base));
    let big = tokio::spawn(async move {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(padded)
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, answer) = f.predict(json!({"rows": [[1, 2]]})).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        "{answer}"
    );
    assert_eq!(big.await.unwrap(), StatusCode::OK);
    assert_eq!(f.predict(json!({"rows": [[1, 2]]})).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_not_sent_as_json_is_refused() {
    let f = serve(fast_polling(), 0);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = f
            .client
            .post(format!("{}/v1/models/m/predict", f.base))
            .body(r#"{"rows": [[1, 2]]}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "unsupported_media_type");
    }
    let response = f
        .client
        .post(format!("{}/v1/models/m/predict", f.base))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(r#"{"rows": [[1, 2]]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_a_replay_sample_does_not_learn_and_learning_needs_its_own_token() {
    let f = serve_artifact(
        ServerConfig {
            learning: Some(learning_often()),
            feedback_token: Some(FEEDBACK_TOKEN.into()),
            token: Some("predict-token".into()),
            ..fast_polling()
        },
        &artifact(0.0, 0),
    );
    let good = r#"{"rows": [[1, 2]], "labels": ["no"]}"#;
    let (status, answer) = f.feedback(good).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "no_replay_sample"),
        "{answer}"
    );
    // The predict token does not open feedback, nor the feedback token predictions.
    let send = |path: &str, token: &str| {
        f.client
            .post(format!("{}{path}", f.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(good)
            .send()
    };
    let status = send("/v1/models/m/feedback", "predict-token")
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let status = send("/v1/models/m/predict", FEEDBACK_TOKEN)
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Learning without a feedback token does not start.
    let dir = tempfile::tempdir().unwrap();
    let e = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig {
            learning: Some(learning_often()),
            ..ServerConfig::default()
        },
        Arc::new(LocalRegistry::new(dir.path())),
        Arc::new(Loader::default()),
    )
    .err()
    .expect("learning started without a feedback token");
    assert!(e.to_string().contains("feedback token"), "{e}");
}

/// Twenty replay guard rows spread over [-3, 3): 0.15, 0.45, 0.75, ... are positives.
fn spread_guard() -> impl Iterator<Item = f64> {
    (0..20).map(|k| -2.85 + 0.3 * f64::from(k))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_labels_where_the_replay_sample_has_rows_are_never_promoted() {
    let f = serve_learning_with(replay_sample(spread_guard()), learning_often());
    // A client says that (0, 2] is `no`, round after round: the live version is wrong on
    // that third of its feedback, but the replay rows there say otherwise.
    for _ in 0..3 {
        let learning = f
            .feedback_round(|_, a| if a > 2.0 { "yes" } else { "no" })
            .await;
        let round = &learning["last_round"];
        assert!(round["promoted_version"].is_null(), "{learning}");
        let reason = round["reason"].as_str().unwrap();
        assert!(
            reason.contains("forgets the training distribution"),
            "{reason}"
        );
    }
    assert_eq!(f.registry.versions("m").unwrap(), [1]);
    let (_, answer) = f.predict(json!({"rows": [[1.0, 0.0]]})).await;
    assert_eq!(answer["predictions"][0]["label"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_cannot_ratchet_away_from_the_promoted_version() {
    // A margin of 0.12: two guard rows of twenty may be lost, not three.
    let f = serve_learning_with(
        replay_sample(spread_guard()),
        OnlineLearning {
            margin: 0.12,
            ..learning_often()
        },
    );
    let region = |t: f64| -> Vec<Value> {
        (1..=200)
            .map(|i| json!([t * f64::from(i) / 200.0, 0.0]))
            .collect()
    };
    let no = vec!["no"; 200];
    // (0, 0.5] is `no`: the candidate (bias -0.5) loses the guard rows 0.15 and 0.45.
    let learning = f.feedback_rows_round(&region(0.5), &no, 0).await;
    assert_eq!(learning["last_round"]["promoted_version"], 2, "{learning}");
    f.wait_for_version(2).await;
    // Then (0, 1]: one guard row more than the live version loses, three more than v1.
    let learning = f.feedback_rows_round(&region(1.0), &no, 1).await;
    let round = &learning["last_round"];
    assert!(round["promoted_version"].is_null(), "{learning}");
    let reason = round["reason"].as_str().unwrap();
    assert!(
        reason.contains("forgets") && reason.contains("promoted v1"),
        "{reason}"
    );
    assert_eq!(f.registry.versions("m").unwrap(), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_are_rate_limited() {
    let f = serve_learning_with(
        replay_sample((0..20).map(|k| if k < 10 { 6.0 } else { -6.0 })),
        OnlineLearning {
            min_promotion_interval: Duration::from_secs(3600),
            ..learning_often()
        },
    );
    let learning = f
        .feedback_round(|_, a| if a > 1.0 { "yes" } else { "no" })
        .await;
    assert_eq!(learning["last_round"]["promoted_version"], 2, "{learning}");
    let (status, _) = f
        .feedback(json!({"rows": vec![[1.5, 0.0]; 200], "labels": vec!["no"; 200]}).to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let learning = &f.about().await["learning"];
    assert_eq!(learning["rounds"], 1, "{learning}");
    assert_eq!(learning["buffered"], 200, "{learning}");
    assert_eq!(f.registry.versions("m").unwrap(), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_learned_versions_are_removed_and_rollback_skips_them() {
    let f = serve_learning_with(
        replay_sample((0..20).map(|k| if k < 10 { 6.0 } else { -6.0 })),
        OnlineLearning {
            keep_learned: 1,
            ..learning_often()
        },
    );
    for (round, threshold) in [1.0, 2.0, 0.0].into_iter().enumerate() {
        let learning = f
            .feedback_round(|_, a| if a > threshold { "yes" } else { "no" })
            .await;
        assert_eq!(
            learning["last_round"]["promoted_version"],
            round + 2,
            "{learning}"
        );
        f.wait_for_version(round as u64 + 2).await;
    }
    // v2 and v3 are gone; v4 (learned from v1, which stays) is served.
    assert_eq!(f.registry.versions("m").unwrap(), [1, 4]);
    assert_eq!(
        f.registry.get("m", 4).unwrap().manifest().parent_version,
        Some(1)
    );
    assert_eq!(f.registry.rollback("m", PRODUCTION).unwrap(), 1);
    f.wait_for_version(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_loading_panics_is_refused_and_later_ones_are_served() {
    let f = serve(fast_polling(), 0);
    let v2 = f
        .registry
        .register(
            "m",
            &artifact_with(json!({"bias": 0.0, "panic_on_load": true})),
        )
        .unwrap();
    f.registry.promote("m", v2, PRODUCTION).unwrap();
    let mut refused = Value::Null;
    for _ in 0..200 {
        let (_, list) = f.get("/v1/models").await;
        refused = serde_json::from_str::<Value>(&list).unwrap()["models"][0].clone();
        if refused["refused_version"] == v2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(refused["refused_version"], v2, "{refused}");
    assert_eq!(refused["version"], 1, "{refused}");
    // The poll goes on: a good version after it is served.
    let v3 = f.registry.register("m", &artifact(-10.0, 0)).unwrap();
    f.registry.promote("m", v3, PRODUCTION).unwrap();
    f.wait_for_version(v3).await;
}
