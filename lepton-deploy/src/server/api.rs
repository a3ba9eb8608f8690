//! The HTTP endpoints: request parsing, answers, and JSON errors.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use lepton_core::{Prediction, Schema, Target, Task};

use crate::labelled::Examples;
use crate::server::AppState;
use crate::server::batcher::Arrival;
use crate::server::live::Live;
use crate::server::metrics::{Metrics, RequestLabels};
use crate::server::rows::{RowIn, preview};

/// An error answer: a status and `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: ready once at least one model is served.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let served = state
        .models
        .list()
        .iter()
        .filter(|(_, slot)| slot.live.is_some())
        .count();
    if served == 0 {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!(
                "no model has a loadable version under alias `{}` yet",
                state.models.alias()
            ),
        )
        .into_response();
    }
    Json(json!({"status": "ready", "models": served})).into_response()
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// `GET /v1/models`: every model with the version it serves.
pub(crate) async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = state
        .models
        .list()
        .into_iter()
        .map(|(name, slot)| {
            json!({
                "name": name,
                "version": slot.live.as_ref().map(|l| l.version),
                "family": slot.live.as_ref().map(|l| l.manifest.model_family.clone()),
                "refused_version": slot.refused.map(|(v, _)| v),
            })
        })
        .collect();
    Json(json!({"alias": state.models.alias(), "models": models}))
}

/// `GET /v1/models/{name}`: schema, version, metrics and lineage of the served version.
pub(crate) async fn describe_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let slot = state
        .models
        .slot(&name)
        .ok_or_else(|| unknown_model(&name))?;
    let live = slot.live.ok_or_else(|| unknown_model(&name))?;
    let refused = slot.refused;
    let m = &live.manifest;
    let (task, classes) = match &m.input_schema.task {
        Task::Classification { classes } => ("classification", Some(classes.clone())),
        Task::Regression => ("regression", None),
    };
    Ok(Json(json!({
        "name": name,
        "version": live.version,
        "family": m.model_family,
        "inputs": m.input_schema.features,
        "target": m.input_schema.target,
        "task": task,
        "classes": classes,
        "metrics": m.metrics,
        "training_data": m.training_data,
        "parent_version": m.parent_version,
        "created_unix": m.created_unix,
        "lepton_version": m.lepton_version,
        "refused": refused.map(|(v, why)| json!({"version": v, "error": why})),
        "learning": state.learner.as_ref().map(|l| l.status(&name)),
    })))
}

fn unknown_model(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_model",
        format!("no model `{name}` is served"),
    )
}

/// A prediction request: `{"rows": [...]}`, each row an object by column name or an array in
/// the schema's column order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    rows: Vec<RowIn>,
}

/// A prediction answer.
#[derive(Serialize)]
struct PredictResponse<'a> {
    model: &'a str,
    version: u64,
    predictions: Vec<Answer<'a>>,
}

/// One prediction as JSON: the label, class index and probabilities, or the value.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Class {
        #[serde(skip_serializing_if = "Option::is_none")]
        label: Option<&'a str>,
        class: usize,
        probabilities: &'a [f32],
    },
    Value {
        value: f64,
    },
}

impl<'a> Answer<'a> {
    fn new(schema: &'a Schema, p: &'a Prediction) -> Self {
        match p {
            Prediction::Class {
                index,
                probabilities,
            } => Answer::Class {
                label: match &schema.task {
                    Task::Classification { classes } => classes.get(*index).map(String::as_str),
                    Task::Regression => None,
                },
                class: *index,
                probabilities,
            },
            Prediction::Value(value) => Answer::Value { value: *value },
        }
    }
}

/// `POST /v1/models/{name}/predict`.
pub(crate) async fn predict(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let Some(live) = state.models.live(&name) else {
        count(&state.metrics, "predict", "", StatusCode::NOT_FOUND);
        return unknown_model(&name).into_response();
    };
    match predict_inner(&state, &live, body).await {
        Ok(response) => {
            live.handles.ok.inc();
            live.handles
                .latency
                .observe(started.elapsed().as_secs_f64());
            response
        }
        Err(e) => {
            count(&state.metrics, "predict", &name, e.status);
            e.into_response()
        }
    }
}

pub(crate) fn count(metrics: &Metrics, endpoint: &str, model: &str, status: StatusCode) {
    metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.to_owned(),
            model: model.to_owned(),
            status: status.as_u16(),
        })
        .inc();
}

async fn predict_inner(
    state: &AppState,
    live: &Arc<Live>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Announced before the body is parsed, so that the batch being formed waits for it.
    let arrival = live.batcher.as_ref().map(|b| b.arriving());
    let body = body.map_err(body_error)?;
    let request: PredictRequest = parse_json(&body)?;
    let (features, rows) = encode_rows(live, request.rows, state.config.max_rows)?;
    let predictions = run(state, live, arrival, features, rows).await?;
    live.handles.rows.inc_by(rows as u64);
    let schema = &live.manifest.input_schema;
    let answer = PredictResponse {
        model: &live.name,
        version: live.version,
        predictions: predictions.iter().map(|p| Answer::new(schema, p)).collect(),
    };
    Ok(Json(answer).into_response())
}

/// Labelled rows: `{"rows": [...], "labels": [...]}`, a label per row (a class label, or a
/// number for a regression).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackRequest {
    rows: Vec<RowIn>,
    labels: Vec<Value>,
}

/// `POST /v1/models/{name}/feedback`: buffers labelled rows for online learning (202).
pub(crate) async fn feedback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(live) = state.models.live(&name) else {
        count(&state.metrics, "feedback", "", StatusCode::NOT_FOUND);
        return unknown_model(&name).into_response();
    };
    let (status, response) = match feedback_inner(&state, &live, body) {
        Ok(body) => (
            StatusCode::ACCEPTED,
            (StatusCode::ACCEPTED, Json(body)).into_response(),
        ),
        Err(e) => (e.status, e.into_response()),
    };
    count(&state.metrics, "feedback", &name, status);
    response
}

fn feedback_inner(
    state: &AppState,
    live: &Live,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let learner = state.learner.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "learning_disabled",
            "this server does not learn online (start it with online learning on)",
        )
    })?;
    let body = body.map_err(body_error)?;
    let request: FeedbackRequest = parse_json(&body)?;
    if request.labels.len() != request.rows.len() {
        return Err(ApiError::invalid(format!(
            "{} rows but {} labels",
            request.rows.len(),
            request.labels.len()
        )));
    }
    let (features, rows) = encode_rows(live, request.rows, state.config.max_rows)?;
    let task = &live.model.schema().task;
    let width = live.model.width();
    let mut examples = Examples::empty(task.clone(), width);
    for (i, (row, label)) in features.chunks(width).zip(&request.labels).enumerate() {
        let target =
            target(task, label).map_err(|m| ApiError::invalid(format!("label {i}: {m}")))?;
        examples
            .push(row, target)
            .map_err(|e| ApiError::invalid(format!("row {i}: {e}")))?;
    }
    let buffered = learner
        .add(&live.name, &examples)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    state
        .metrics
        .feedback_rows
        .get_or_create(&Metrics::model(&live.name))
        .inc_by(rows as u64);
    Ok(json!({"model": live.name, "accepted": rows, "buffered": buffered}))
}

/// A JSON label as a target: a class label (`"7"`, or `7` where the label is `"7"`), or a
/// finite number for a regression.
fn target(task: &Task, label: &Value) -> Result<Target, String> {
    match task {
        Task::Classification { classes } => {
            let text = match label {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("expected a class label, got {other}")),
            };
            classes
                .iter()
                .position(|c| *c == text)
                .map(Target::Class)
                .ok_or_else(|| format!("`{text}` is not one of the classes {}", preview(classes)))
        }
        Task::Regression => {
            let value = match label {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            value
                .filter(|v| v.is_finite())
                .map(Target::Value)
                .ok_or_else(|| format!("expected a finite number, got {label}"))
        }
    }
}

/// The body could not be read: too large (413) or broken off (400).
fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            e.body_text(),
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            "invalid_request"
        } else {
            "malformed_json"
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    })
}

/// Checks and encodes the rows of one request.
fn encode_rows(
    live: &Live,
    rows: Vec<RowIn>,
    max_rows: usize,
) -> Result<(Vec<f32>, usize), ApiError> {
    if rows.is_empty() {
        return Err(ApiError::invalid("`rows` is empty"));
    }
    let n = rows.len();
    if n > max_rows {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_rows",
            format!("{n} rows in one request; the limit is {max_rows}"),
        ));
    }
    let schema = live.model.schema();
    let mut features = Vec::with_capacity(n * live.model.width());
    let mut cells = Vec::with_capacity(schema.features.len());
    for (i, row) in rows.into_iter().enumerate() {
        cells.clear();
        row.into_cells(schema, &mut cells)
            .map_err(|m| ApiError::invalid(format!("row {i}: {m}")))?;
        live.model
            .encode(&cells, &mut features)
            .map_err(|e| ApiError::invalid(format!("row {i}: {e}")))?;
    }
    Ok((features, n))
}

/// Runs encoded rows through the model: through the batcher the request announced itself to,
/// or (batching off) alone on a blocking thread.
async fn run(
    state: &AppState,
    live: &Arc<Live>,
    arrival: Option<Arrival>,
    features: Vec<f32>,
    rows: usize,
) -> Result<Vec<Prediction>, ApiError> {
    let internal = |m: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m);
    let predictions = match arrival {
        Some(arrival) => {
            let answer = arrival.submit(features, rows).map_err(|_| {
                state.metrics.shed.inc();
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the model's queue is full; retry later",
                )
            })?;
            answer
                .await
                .map_err(|_| internal("the batch worker stopped".into()))?
        }
        None => {
            let live = live.clone();
            live.handles.batch_rows.observe(rows as f64);
            tokio::task::spawn_blocking(move || {
                let x = lepton_core::Features::new(&features, live.model.width())?;
                live.model.predict(x)
            })
            .await
            .map_err(|e| internal(e.to_string()))?
        }
    };
    predictions.map_err(|e| internal(format!("prediction failed: {e}")))
}

/// Refuses `/v1` requests without the configured bearer token.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.config.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !ok {
            count(&state.metrics, "auth", "", StatusCode::UNAUTHORIZED);
            let message = if given.is_some() {
                "wrong bearer token"
            } else {
                "missing bearer token (Authorization: Bearer ...)"
            };
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
                .into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Admits a `/v1` request if fewer than the limit are in flight (else 503 at once: load
/// shedding) and answers 504 if it takes longer than the timeout.
pub(crate) async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        state.metrics.shed.inc();
        count(&state.metrics, "shed", "", StatusCode::SERVICE_UNAVAILABLE);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{} requests in flight, the limit; retry later",
                state.config.max_concurrency
            ),
        )
        .into_response();
    };
    match tokio::time::timeout(state.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "no answer within {} ms",
                state.config.request_timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// Any other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
