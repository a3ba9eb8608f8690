//! The HTTP endpoints: request parsing, answers, and JSON errors.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use lepton_core::{Prediction, Schema, Target, Task};

use crate::labelled::Examples;
use crate::servable::{Cell, Inputs};
use crate::server::batcher::{Arrival, predict_caught};
use crate::server::live::Live;
use crate::server::metrics::{Metrics, RequestLabels};
use crate::server::rows::{Bounded, CellIn, Limits, RequestIn, RowIn, parse_request, preview};
use crate::server::{AppState, BODY_MEMORY_FACTOR};

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

/// `GET /readyz`: ready once at least one model is served, and while no served model has
/// lost all of its batch workers.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let models = state.models.list();
    let stalled: Vec<&str> = models
        .iter()
        .filter(|(_, slot)| {
            slot.live
                .as_ref()
                .and_then(|l| l.batcher.as_ref())
                .is_some_and(|b| b.workers_alive() == 0)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !stalled.is_empty() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("no batch worker is running for {}", stalled.join(", ")),
        )
        .into_response();
    }
    let served = models
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

/// `POST /v1/models/{name}/predict`: `{"rows": [...]}`, each row an object by column name
/// or an array in the schema's column order.
pub(crate) async fn predict(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let Some(live) = state.models.live(&name) else {
        count(&state.metrics, "predict", "", StatusCode::NOT_FOUND);
        return unknown_model(&name).into_response();
    };
    match predict_inner(&state, &live, &headers, body).await {
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
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_json(headers)?;
    // Announced before the body is parsed, so that the batch being formed waits for it.
    let arrival = live.batcher.as_ref().map(|b| b.arriving());
    let body = body.map_err(body_error)?;
    let request = parse(state, live, &body, false)?;
    let (inputs, rows) = encode_rows(live, request.rows, state.config.max_rows)?;
    let predictions = run(state, live, arrival, inputs, rows).await?;
    live.handles.rows.inc_by(rows as u64);
    let schema = &live.manifest.input_schema;
    let answer = PredictResponse {
        model: &live.name,
        version: live.version,
        predictions: predictions.iter().map(|p| Answer::new(schema, p)).collect(),
    };
    Ok(Json(answer).into_response())
}

/// `POST /v1/models/{name}/feedback`: buffers labelled rows for online learning (202):
/// `{"rows": [...], "labels": [...]}`, a label per row (a class label, or a number for a
/// regression).
pub(crate) async fn feedback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(live) = state.models.live(&name) else {
        count(&state.metrics, "feedback", "", StatusCode::NOT_FOUND);
        return unknown_model(&name).into_response();
    };
    let (status, response) = match feedback_inner(&state, &live, &headers, body) {
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
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    let learner = state.learner.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "learning_disabled",
            "this server does not learn online (start it with online learning on)",
        )
    })?;
    if live.learnable_replay().is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_replay_sample",
            format!(
                "version {} of `{}` has no replay sample of its training rows, without which \
                 a candidate cannot be checked against the training distribution; it does not \
                 learn online",
                live.version, live.name
            ),
        ));
    }
    require_json(headers)?;
    let body = body.map_err(body_error)?;
    let request = parse(state, live, &body, true)?;
    let labels = request.labels.unwrap_or(Bounded {
        items: Vec::new(),
        extra: 0,
    });
    if labels.sent() != request.rows.sent() {
        return Err(ApiError::invalid(format!(
            "{} rows but {} labels",
            request.rows.sent(),
            labels.sent()
        )));
    }
    if live.model.takes_texts() {
        return Err(ApiError::invalid(
            "this model reads raw texts and does not learn online",
        ));
    }
    let (Inputs::Numbers(features), rows) = encode_rows(live, request.rows, state.config.max_rows)?
    else {
        return Err(ApiError::invalid("this model's rows are not numbers"));
    };
    let task = &live.model.schema().task;
    let width = live.model.width();
    let mut examples = Examples::empty(task.clone(), width);
    for (i, (row, label)) in features.chunks(width).zip(&labels.items).enumerate() {
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
fn target(task: &Task, label: &CellIn) -> Result<Target, String> {
    match task {
        Task::Classification { classes } => {
            let text = match label {
                CellIn::Cell(Cell::Text(s)) => s.clone(),
                CellIn::Cell(Cell::Number(n)) => n.to_string(),
                CellIn::Cell(Cell::Missing) => {
                    return Err("expected a class label, got null".into());
                }
                CellIn::Nested(what) => return Err(format!("expected a class label, got {what}")),
            };
            classes
                .iter()
                .position(|c| *c == text)
                .map(Target::Class)
                .ok_or_else(|| format!("`{text}` is not one of the classes {}", preview(classes)))
        }
        Task::Regression => {
            let value = match label {
                CellIn::Cell(Cell::Number(n)) => Some(*n),
                CellIn::Cell(Cell::Text(s)) => s.trim().parse().ok(),
                CellIn::Cell(Cell::Missing) | CellIn::Nested(_) => None,
            };
            value
                .filter(|v| v.is_finite())
                .map(Target::Value)
                .ok_or_else(|| {
                    let got = match label {
                        CellIn::Cell(Cell::Number(n)) => n.to_string(),
                        CellIn::Cell(Cell::Text(s)) => format!("{s:?}"),
                        CellIn::Cell(Cell::Missing) => "null".into(),
                        CellIn::Nested(what) => (*what).into(),
                    };
                    format!("expected a finite number, got {got}")
                })
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

/// Refuses a body that does not say it is JSON (415): a browser can send a `text/plain` POST
/// to any address without asking first, but not an `application/json` one.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body must be sent as `Content-Type: application/json`, not `{content_type}`"
            ),
        ))
    }
}

/// Parses a request for `live` within the server's limits.
fn parse(state: &AppState, live: &Live, body: &[u8], labels: bool) -> Result<RequestIn, ApiError> {
    let limits = Limits {
        columns: live.model.schema().features.len(),
        max_rows: state.config.max_rows,
    };
    parse_request(body, limits, labels).map_err(|e| {
        let code = if e.is_data() {
            "invalid_request"
        } else {
            "malformed_json"
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    })
}

/// Checks and encodes the rows of one request: numbers, or the texts of a model that
/// takes them.
fn encode_rows(
    live: &Live,
    rows: Bounded<RowIn>,
    max_rows: usize,
) -> Result<(Inputs, usize), ApiError> {
    let n = rows.sent();
    if n == 0 {
        return Err(ApiError::invalid("`rows` is empty"));
    }
    if n > max_rows {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_rows",
            format!("{n} rows in one request; the limit is {max_rows}"),
        ));
    }
    let schema = live.model.schema();
    let texts = live.model.takes_texts();
    let mut features = Vec::with_capacity(if texts { 0 } else { n * live.model.width() });
    let mut documents = Vec::with_capacity(if texts { n } else { 0 });
    let mut cells = Vec::with_capacity(schema.features.len());
    for (i, row) in rows.items.into_iter().enumerate() {
        cells.clear();
        row.into_cells(schema, &mut cells)
            .map_err(|m| ApiError::invalid(format!("row {i}: {m}")))?;
        if texts {
            match cells.as_mut_slice() {
                [Cell::Text(text)] => documents.push(std::mem::take(text)),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "row {i}: the text is missing or not a string"
                    )));
                }
            }
        } else {
            live.model
                .encode(&cells, &mut features)
                .map_err(|e| ApiError::invalid(format!("row {i}: {e}")))?;
        }
    }
    let inputs = if texts {
        Inputs::Texts(documents)
    } else {
        Inputs::Numbers(features)
    };
    Ok((inputs, n))
}

/// Runs encoded rows through the model: through the batcher the request announced itself to,
/// or (batching off) alone on a blocking thread.
async fn run(
    state: &AppState,
    live: &Arc<Live>,
    arrival: Option<Arrival>,
    inputs: Inputs,
    rows: usize,
) -> Result<Vec<Prediction>, ApiError> {
    let internal = |m: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m);
    let predictions = match arrival {
        Some(arrival) => {
            let answer = arrival.submit(inputs, rows).map_err(|_| {
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
            // Waiting for a turn is where a request that times out is dropped, before the
            // model; the turn is held until the model returns, timed out or not.
            let turn = live
                .turns
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| internal("the model is being unloaded".into()))?;
            let live = live.clone();
            live.handles.batch_rows.observe(rows as f64);
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                predict_caught(live.model.as_ref(), &inputs, &|| {
                    live.handles.panics.inc();
                })
            })
            .await
            .map_err(|e| internal(e.to_string()))?
        }
    };
    predictions.map_err(|e| internal(format!("prediction failed: {e}")))
}

/// Refuses `/v1` requests (but feedback) without the configured bearer token.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match check_token(&state, &request, state.config.token.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Refuses feedback without the feedback token: a role of its own, since feedback changes
/// the model that answers everyone ([`ServerConfig::check`](crate::ServerConfig) refuses
/// learning without one).
pub(crate) async fn authorize_feedback(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match check_token(&state, &request, state.config.feedback_token.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Whether `request` carries `Authorization: Bearer <token>` (the scheme in any case, as
/// RFC 9110 has it), when a token is wanted.
fn check_token(state: &AppState, request: &Request, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, credentials) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(credentials.trim_start())
        });
    if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
        return Ok(());
    }
    count(&state.metrics, "auth", "", StatusCode::UNAUTHORIZED);
    let message = if given.is_some() {
        "wrong bearer token"
    } else {
        "missing bearer token (Authorization: Bearer ...)"
    };
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message,
    ))
}

/// Compares two secrets in time that depends on neither: their SHA-256 digests (of one
/// length, whatever the secrets' lengths) are compared without stopping at a difference.
fn same_secret(given: &[u8], wanted: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(wanted));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Admits a `/v1` request if fewer than the limit are in flight and the memory its body may
/// take is within the budget (else 503 at once: load shedding), and answers 504 if it takes
/// longer than the timeout.
pub(crate) async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let charge = memory_charge_kib(&request, state.config.max_body_bytes);
    let Ok(_memory) = state.memory_kib.clone().try_acquire_many_owned(charge) else {
        return shed(
            &state,
            "the request bodies in flight use the server's memory budget; retry later".into(),
        );
    };
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        let limit = state.config.max_concurrency;
        return shed(
            &state,
            format!("{limit} requests in flight, the limit; retry later"),
        );
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

/// A request refused at once (503), counted as shed.
fn shed(state: &AppState, message: String) -> Response {
    state.metrics.shed.inc();
    count(&state.metrics, "shed", "", StatusCode::SERVICE_UNAVAILABLE);
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message).into_response()
}

/// What a request is charged against the memory budget, in KiB: [`BODY_MEMORY_FACTOR`]
/// times its body, whose size is its `Content-Length`, the limit for a chunked body, and
/// nothing for a request without either (which has no body).
fn memory_charge_kib(request: &Request, max_body_bytes: usize) -> u32 {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = match declared {
        Some(n) => n.min(max_body_bytes),
        None if headers.contains_key(header::TRANSFER_ENCODING) => max_body_bytes,
        None => 0,
    };
    let kib = body.saturating_mul(BODY_MEMORY_FACTOR).div_ceil(1024);
    u32::try_from(kib).unwrap_or(u32::MAX)
}

/// Any other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
